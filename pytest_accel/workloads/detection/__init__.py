"""YOLO object detection: generated data set, the bundled detector, runners per runtime, metrics.

ultralytics (AGPL-3.0) is imported only inside this package's functions, never at import time.
"""
