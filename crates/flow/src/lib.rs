//! Flumen's agent runtime: Flume configuration files, sources, channels and sinks.
