"""Starting runs: in this process or as a background one, several as a packed cohort; progress, load."""
