"""The sandbox Instagram: a local Graph API lookalike for tests, demos and trying Reelay out.

``sandbox.server.Sandbox`` serves Meta's wire format over ``sandbox.state.SandboxState`` (the
simulated world). Like Meta, it knows nothing of Reelay: it imports nothing from ``core``,
``bot``, ``panel``, ``jobs`` or ``reelay``, and whoever runs it hands it its secrets and
webhook URL (``reelay.sandbox_runner`` inside ``reelay run`` / ``reelay panel``).
"""
