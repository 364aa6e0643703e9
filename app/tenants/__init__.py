"""Tenants: onOffice marketplace activation, signed-URL checks, sessions for the iframe UI."""
