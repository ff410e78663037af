"""The HTTP surface: app factory (``gateway.http.app.create_app``), OpenAI-compatible routes,
admin API, error rendering."""
