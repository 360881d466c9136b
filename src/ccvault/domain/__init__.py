"""Pure domain: models, enums and rules. No I/O here, nothing that imports storage or api."""
