"""The side-by-side benchmark: a fast fake engine, a load generator, and three paths to the
engine (direct, Flock, LiteLLM's proxy). Run it with `make bench` or `python -m bench.run`."""
