"""ERPNext / Frappe over its REST API (token api_key:api_secret).

This package is found through the `synchub.connectors` entry point `erpnext`. It declares the
settings a system using it takes, so that `synchub check` validates them; the client,
connector, webhook and sandbox modules live beside this file.
"""

from typing import Any

from connectors.erpnext.connector import Connector

__all__ = ["SETTINGS_SCHEMA", "Connector"]

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
            },
            "page_size": {
                "type": "integer",
                "minimum": 1,
                "description": "Rows per list call (limit_page_length) when pulling; default 100."
            },
            "concurrency": {
                "type": "integer",
                "minimum": 1,
                "maximum": 32,
                "description": "Documents read or written at the same time (ERPNext writes one per call); default 4."
            },
            "full_documents": {
                "type": "array",
                "items": {"type": "string", "minLength": 1},
                "description": "Doctypes read as full documents with their child tables (one GET each); "
                               "default: Sales Order and the other transactions."
            },
            "ca_file": {
                "type": "string",
                "minLength": 1,
                "description": "CA certificate file to trust for the site's HTTPS (self-signed or private CA)."
            }
        }
    }
}
