"""How far to trust a number: source identity, held-out sources, error bands, evidence."""
