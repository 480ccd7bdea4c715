"""Frozen models shared by every layer. Nothing here touches the host."""
