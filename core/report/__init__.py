"""Report: plain-text metric tables, and the HTML report with its figures."""
