"""The built-in models, one module each.

A module here is a model's whole declaration: its settings (schema fragment with the defaults), its cross-key
check, what it reads and how it is trained and used for prediction. It registers itself with
:func:`glasspipe.plugins.register_model` when imported; :mod:`glasspipe.plugins_all` imports every module of
this package. The heavy code (torch, the networks) is named as 'module:function' and imported only when a job
trains or predicts, so that reading the registry stays cheap.

Adding a model: a new module here (or anywhere, named in ``GLASSPIPE_PLUGINS``) that calls ``register_model``,
plus its import line in glasspipe.plugins_all.
"""
