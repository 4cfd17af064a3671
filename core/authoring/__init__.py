"""Authoring: what plugin authors run -- task checks (``shopmtl plugins check``) and the plugin scaffold (``new-plugin``)."""
