"""Reports computed apart from printing them: each report yields lines or a document; hooks only print/write."""
