"""DingTalk approvals (OA) with AES-encrypted event callbacks.

This package is found through the `synchub.connectors` entry point `dingtalk`. It declares the
settings a system using it takes, so that `synchub check` validates them; the client,
connector, webhook and sandbox modules live beside this file.
"""

from typing import Any

SETTINGS_SCHEMA: dict[str, Any] = {
    "auth": {
        "type": "object",
        "additionalProperties": False,
        "required": ["app_key", "app_secret"],
        "properties": {
            "app_key": {"type": "string", "minLength": 1, "description": "Application AppKey."},
            "app_secret": {"type": "string", "minLength": 1, "description": "Application AppSecret."},
        },
    },
    "webhook": {
        "type": "object",
        "additionalProperties": False,
        "required": ["token", "aes_key"],
        "properties": {
            "token": {"type": "string", "minLength": 1, "description": "Callback token (signature)."},
            "aes_key": {"type": "string", "minLength": 1, "description": "43-character EncodingAESKey."},
            "owner_key": {"type": "string", "minLength": 1,
                          "description": "The AppKey (or corp id) the callbacks are encrypted for."},
            "max_age_seconds": {"type": "integer", "minimum": 1,
                                "description": "Refuse callbacks whose timestamp is further from now (default 300)."},
        },
    },
    "options": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "api": {"enum": ["new", "old"], "description": "API generation: new (api.dingtalk.com, default) or old (oapi)."},
            "oapi_base_url": {"type": "string", "pattern": "^https?://",
                              "description": "Base URL of the old API (default https://oapi.dingtalk.com)."},
            "process_codes": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "Approval kind -> process code (short form of `kinds`).",
            },
            "kinds": {
                "type": "object",
                "description": "Approval kind -> its process and form layout.",
                "additionalProperties": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["process_code"],
                    "properties": {
                        "process_code": {"type": "string", "minLength": 1},
                        "fields": {"type": "object", "additionalProperties": {"type": "string"},
                                   "description": "Form label -> componentType (TextField, MoneyField...)."},
                        "originator_user_id": {"type": "string"},
                        "dept_id": {"type": "integer"},
                    },
                },
            },
            "originator_user_id": {"type": "string", "description": "Default originator of created instances."},
            "agent_id": {"type": "string"},
            "page_size": {"type": "integer", "minimum": 1, "maximum": 20},
            "lookback_days": {"type": "integer", "minimum": 0,
                              "description": "How far before the cursor to list instances by start time (default 31)."},
            "history_days": {"type": "integer", "minimum": 1, "description": "How far back a full pull lists (default 365)."},
            "window_days": {"type": "integer", "minimum": 1, "maximum": 365,
                            "description": "Widest start-time window of one listing (default 120)."},
            "ca_file": {"type": "string"},
        },
    },
}

from connectors.dingtalk.connector import Connector  # noqa: E402

__all__ = ["SETTINGS_SCHEMA", "Connector"]
