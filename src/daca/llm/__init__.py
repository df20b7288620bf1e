"""The LLM layer: provider settings, the model factory, the offline model, prompts and tools.

Importing any module of this package reads no environment and needs no key: settings are read
when ``LLMSettings()`` is built, and models are built by ``daca.llm.factory.build_model``.
"""
