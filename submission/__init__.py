"""The last stage: write, verify and score submissions in the official challenge CSV format."""
