"""WeCom (WeChat Work) approvals with encrypted XML callbacks.

This package is found through the `synchub.connectors` entry point `wecom`. It declares the
settings a system using it takes, so that `synchub check` validates them; the client,
connector, webhook and sandbox modules live beside this file.
"""

from typing import Any

SETTINGS_SCHEMA: dict[str, Any] = {
    "auth": {
        "type": "object",
        "additionalProperties": False,
        "required": [
            "corp_id",
            "secret"
        ],
        "properties": {
            "corp_id": {
                "type": "string",
                "minLength": 1,
                "description": "Corp ID."
            },
            "secret": {
                "type": "string",
                "minLength": 1,
                "description": "Secret of the approval application."
            }
        }
    },
    "webhook": {
        "type": "object",
        "additionalProperties": False,
        "required": [
            "token",
            "encoding_aes_key"
        ],
        "properties": {
            "token": {
                "type": "string",
                "minLength": 1,
                "description": "Callback Token."
            },
            "encoding_aes_key": {
                "type": "string",
                "minLength": 1,
                "description": "43-character EncodingAESKey."
            },
            "max_age_seconds": {
                "type": "number",
                "minimum": 1,
                "description": "Callbacks whose timestamp is further from now than this are refused (default 300)."
            }
        }
    },
    "options": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "template_ids": {
                "type": "object",
                "additionalProperties": {
                    "type": "string"
                },
                "description": "Approval kind -> template id."
            },
            "agent_id": {
                "type": "string"
            },
            "forms": {
                "type": "object",
                "description": "Approval kind -> form field name -> the template control it fills.",
                "additionalProperties": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["id", "control"],
                        "properties": {
                            "id": {"type": "string", "minLength": 1, "description": "Control id (Text-1570000000000)."},
                            "control": {"enum": ["Text", "Textarea", "Number", "Money", "Date", "Selector"]},
                            "date_type": {"enum": ["day", "hour"], "description": "Date controls: day or hour."},
                            "options": {
                                "type": "object",
                                "additionalProperties": {"type": "string"},
                                "description": "Selector controls: option text -> option key."
                            },
                            "multi": {"type": "boolean", "description": "Selector controls: several options."}
                        }
                    }
                }
            },
            "page_size": {
                "type": "integer",
                "minimum": 1,
                "maximum": 100,
                "description": "sp_nos per getapprovalinfo call (WeCom's limit is 100)."
            },
            "lookback_days": {
                "type": "number",
                "minimum": 0,
                "description": "An incremental pull lists instances submitted this long before the cursor (default 7)."
            },
            "history_days": {
                "type": "number",
                "minimum": 0,
                "description": "A full pull lists instances submitted this long ago (default 31)."
            },
            "ca_file": {
                "type": "string",
                "description": "CA bundle to trust (a sandbox served over TLS)."
            }
        }
    }
}

from connectors.wecom.connector import Connector  # noqa: E402

__all__ = ["SETTINGS_SCHEMA", "Connector"]
