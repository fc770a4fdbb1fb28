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
            },
            "url": {
                "type": "string",
                "minLength": 1,
                "description": "The public webhook URL HubSpot calls, when a proxy in front of the hub "
                               "changes its scheme or host (the signature covers the URL HubSpot used)."
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
            },
            "page_size": {
                "type": "integer",
                "minimum": 1,
                "maximum": 100,
                "default": 100,
                "description": "Records per list or search call (HubSpot allows at most 100)."
            },
            "properties": {
                "type": "object",
                "description": "Properties to read per object type, e.g. {companies: [name, domain]}; "
                               "by default every property the properties API lists.",
                "additionalProperties": {
                    "type": "array",
                    "items": {"type": "string", "minLength": 1}
                }
            },
            "ca_file": {
                "type": "string",
                "minLength": 1,
                "description": "CA bundle to trust (a sandbox served over TLS)."
            }
        }
    }
}

from connectors.hubspot.connector import HubSpotConnector  # noqa: E402

Connector = HubSpotConnector

__all__ = ["SETTINGS_SCHEMA", "Connector", "HubSpotConnector"]
