"""Workloads: what runs on a device. They take a Device, never pytest options."""
