"""Feishu (Lark) approvals with encrypted event subscriptions (schema 2.0).

This package is found through the `synchub.connectors` entry point `feishu`. It declares the
settings a system using it takes, so that `synchub check` validates them; the client,
connector, webhook and sandbox modules live beside this file.
"""

from typing import Any

SETTINGS_SCHEMA: dict[str, Any] = {
    "auth": {
        "type": "object",
        "additionalProperties": False,
        "required": [
            "app_id",
            "app_secret"
        ],
        "properties": {
            "app_id": {
                "type": "string",
                "minLength": 1,
                "description": "App ID."
            },
            "app_secret": {
                "type": "string",
                "minLength": 1,
                "description": "App Secret."
            }
        }
    },
    "webhook": {
        "type": "object",
        "additionalProperties": False,
        "required": [
            "encrypt_key"
        ],
        "properties": {
            "encrypt_key": {
                "type": "string",
                "minLength": 1,
                "description": "Event encrypt key."
            },
            "verification_token": {
                "type": "string",
                "minLength": 1,
                "description": "Event verification token."
            }
        }
    },
    "options": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "approval_codes": {
                "type": "object",
                "additionalProperties": {
                    "type": "string"
                },
                "description": "Approval kind -> approval definition code."
            }
        }
    }
}
