"""The Failed payments page: filter bar, table, detail pane, action dialogs and audit."""
