"""Odoo ERP over its external JSON-RPC API (authenticate, then execute_kw).

This package is found through the `synchub.connectors` entry point `odoo`. It declares the
settings a system using it takes, so that `synchub check` validates them; the client,
connector, webhook and sandbox modules live beside this file.
"""

from typing import Any

SETTINGS_SCHEMA: dict[str, Any] = {
    "auth": {
        "type": "object",
        "additionalProperties": False,
        "required": [
            "database",
            "login",
            "api_key"
        ],
        "properties": {
            "database": {
                "type": "string",
                "minLength": 1,
                "description": "Odoo database name."
            },
            "login": {
                "type": "string",
                "minLength": 1,
                "description": "User login."
            },
            "api_key": {
                "type": "string",
                "minLength": 1,
                "description": "API key (or password) of that user."
            }
        }
    },
    "webhook": {
        "type": "object",
        "additionalProperties": False,
        "required": [],
        "properties": {
            "secret": {
                "type": "string",
                "minLength": 1,
                "description": "Shared secret expected in the automation webhook's X-Synchub-Token header."
            }
        }
    },
    "options": {
        "type": "object",
        "additionalProperties": False,
        "required": [],
        "properties": {}
    }
}
