"""HubSpot CRM over the CRM v3 objects API (private-app bearer token, search, batch writes).

This package is found through the `synchub.connectors` entry point `hubspot`. It declares the
settings a system using it takes, so that `synchub check` validates them; the client,
connector, webhook and sandbox modules live beside this file.
"""

from typing import Any

SETTINGS_SCHEMA: dict[str, Any] = {
    "auth": {
        "type": "object",
        "additionalProperties": False,
        "required": [],
        "properties": {
            "access_token": {
                "type": "string",
                "minLength": 1,
                "description": "Private app access token."
            },
            "client_id": {
                "type": "string",
                "minLength": 1,
                "description": "OAuth app client id."
            },
            "client_secret": {
                "type": "string",
                "minLength": 1,
                "description": "OAuth app client secret."
            },
            "refresh_token": {
                "type": "string",
                "minLength": 1,
                "description": "OAuth refresh token."
            }
        }
    },
    "webhook": {
        "type": "object",
        "additionalProperties": False,
        "required": [
            "client_secret"
        ],
        "properties": {
            "client_secret": {
                "type": "string",
                "minLength": 1,
                "description": "App client secret: the key of the v3 webhook signature."
            }
        }
    },
    "options": {
        "type": "object",
        "additionalProperties": False,
        "required": [],
        "properties": {
            "portal_id": {
                "type": "string",
                "minLength": 1,
                "description": "HubSpot account (portal) id."
            }
        }
    }
}
