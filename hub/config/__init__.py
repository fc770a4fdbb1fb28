"""The hub configuration: systems, flows and store, loaded from YAML and checked in full."""

from hub.config.loader import load_config
from hub.config.model import ConflictPolicy, Endpoint, Flow, HubConfig, Schedule, System
from hub.config.secrets import Secret, reveal

__all__ = ["ConflictPolicy", "Endpoint", "Flow", "HubConfig", "Schedule", "Secret", "System", "load_config", "reveal"]
