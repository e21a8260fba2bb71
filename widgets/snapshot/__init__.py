"""The snapshot export dialog and the charts rendered for the report."""
