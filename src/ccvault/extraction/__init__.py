"""Requirement extraction: from scenario and rule text to the profile fields they need."""
