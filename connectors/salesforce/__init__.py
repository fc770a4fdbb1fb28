"""Salesforce CRM over the REST API (OAuth2 token endpoint, SOQL, sObject Collections).

This package is found through the `synchub.connectors` entry point `salesforce`. It declares the
settings a system using it takes, so that `synchub check` validates them; the client,
connector, webhook and sandbox modules live beside this file.
"""

from typing import Any

from connectors.salesforce.connector import Connector

__all__ = ["SETTINGS_SCHEMA", "Connector"]

SETTINGS_SCHEMA: dict[str, Any] = {
    "auth": {
        "type": "object",
        "additionalProperties": False,
        "required": [
            "client_id",
            "client_secret"
        ],
        "properties": {
            "login_url": {
                "type": "string",
                "pattern": "^(https?://|\\$\\{)",
                "description": "Token endpoint host, e.g. https://login.salesforce.com."
            },
            "grant_type": {
                "enum": [
                    "client_credentials",
                    "password"
                ],
                "description": "OAuth2 flow of the connected app."
            },
            "client_id": {
                "type": "string",
                "minLength": 1,
                "description": "Connected app consumer key."
            },
            "client_secret": {
                "type": "string",
                "minLength": 1,
                "description": "Connected app consumer secret."
            },
            "username": {
                "type": "string",
                "minLength": 1,
                "description": "For the password flow."
            },
            "password": {
                "type": "string",
                "minLength": 1,
                "description": "For the password flow (password + security token)."
            }
        }
    },
    "webhook": {
        "type": "object",
        "additionalProperties": False,
        "required": [],
        "properties": {
            "organization_id": {
                "type": "string",
                "minLength": 1,
                "description": "Outbound messages must carry this org id (18 characters)."
            }
        }
    },
    "options": {
        "type": "object",
        "additionalProperties": False,
        "required": [],
        "properties": {
            "api_version": {
                "type": "string",
                "pattern": "^v[0-9]+\\.[0-9]$",
                "description": "REST API version, e.g. v60.0."
            },
            "page_size": {
                "type": "integer",
                "minimum": 200,
                "maximum": 2000,
                "description": "Records per query page (Sforce-Query-Options batchSize, 200 to 2000)."
            },
            "ca_file": {
                "type": "string",
                "minLength": 1,
                "description": "CA bundle to trust for the API and token hosts (a sandbox's self-signed CA)."
            },
            "fields": {
                "type": "object",
                "additionalProperties": {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1},
                "description": "Per sObject, the fields to read (Id and SystemModstamp are always read); "
                               "without it a pull reads every field the describe lists, at one describe call."
            }
        }
    }
}
