"""campaign-importer: read → normalise → dedupe → chunk → submit → sync → publish."""
