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
            }
        }
    }
}
