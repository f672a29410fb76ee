"""Tests for pqlr.hw: emulated targets, profiles, estimates."""
