"""The embedded AWS and the project's own emulation of what it lacks.

- ``moto_server``: moto in server mode (a real HTTP AWS emulator) started in-process.

Nothing here is imported by the Lambda handler.
"""
