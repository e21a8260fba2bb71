"""What every view uses: colours, theme, icons, table models, small labels."""
