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
        "required": [
            "app_key",
            "app_secret"
        ],
        "properties": {
            "app_key": {
                "type": "string",
                "minLength": 1,
                "description": "Application AppKey."
            },
            "app_secret": {
                "type": "string",
                "minLength": 1,
                "description": "Application AppSecret."
            }
        }
    },
    "webhook": {
        "type": "object",
        "additionalProperties": False,
        "required": [
            "token",
            "aes_key"
        ],
        "properties": {
            "token": {
                "type": "string",
                "minLength": 1,
                "description": "Callback token (signature)."
            },
            "aes_key": {
                "type": "string",
                "minLength": 1,
                "description": "43-character EncodingAESKey."
            },
            "owner_key": {
                "type": "string",
                "minLength": 1,
                "description": "The AppKey (or corp id) the callbacks are encrypted for."
            }
        }
    },
    "options": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "process_codes": {
                "type": "object",
                "additionalProperties": {
                    "type": "string"
                },
                "description": "Approval kind -> process code."
            },
            "agent_id": {
                "type": "string"
            }
        }
    }
}
