"""Privacy, consent and user control: consent per purpose decided at use time, the processing
gate for profiling, export, erasure everywhere (stores, online state, served model), retention,
pseudonymization, the personal-data audit log and user preferences. See ``docs/privacy.md``.

Other capabilities call :meth:`personify.privacy.consent.ConsentPolicy.allows`
(``allows(tenant, user_id, purpose)``), e.g. messaging at send time.
"""
