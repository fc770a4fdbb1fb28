"""ERPNext / Frappe over its REST API (token api_key:api_secret).

This package is found through the `synchub.connectors` entry point `erpnext`. It declares the
settings a system using it takes, so that `synchub check` validates them; the client,
connector, webhook and sandbox modules live beside this file.
"""

from typing import Any

SETTINGS_SCHEMA: dict[str, Any] = {
    "auth": {
        "type": "object",
        "additionalProperties": False,
        "required": [
            "api_key",
            "api_secret"
        ],
        "properties": {
            "api_key": {
                "type": "string",
                "minLength": 1,
                "description": "API key of the integration user."
            },
            "api_secret": {
                "type": "string",
                "minLength": 1,
                "description": "API secret of the integration user."
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
                "description": "Webhook secret: the key of X-Frappe-Webhook-Signature."
            }
        }
    },
    "options": {
        "type": "object",
        "additionalProperties": False,
        "required": [],
        "properties": {
            "timezone": {
                "type": "string",
                "minLength": 1,
                "description": "The site's time zone (ERPNext datetimes carry none), e.g. Asia/Shanghai."
            }
        }
    }
}
