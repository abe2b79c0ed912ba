"""The agentledger dashboard: Plotly Dash pages over a ``LedgerReader``.

``agentledger.dashboard.app.create_dash_app(reader)`` builds the app; the collector mounts its
WSGI server at ``/dashboard``. The dashboard reads every number through the reader and imports
nothing of the collector or the SDK. Importing this package does not import Dash.
"""
