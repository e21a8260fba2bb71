"""Card-number masking for text and JSON: nothing leaves the process unmasked."""
