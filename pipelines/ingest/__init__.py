"""The one ingest pipeline: read → columns → phones → dedupe → suppression → zones and hours → chunk → sinks."""
