"""The chat service (Dapr app-id ``chat-service``, port 8010).

It answers a user with an agent whose instructions carry what the memory service knows about
them, then publishes ``ConversationUpdated``. It stores nothing itself. Run it with
``uvicorn daca.chat.app:create_app --factory --port 8010``.
"""
