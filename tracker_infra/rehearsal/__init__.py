"""The deploy rehearsal's stand-in for AWS: a local moto server (server), the offline transforms
CloudFormation would run (transforms), and the copies of the rendered templates moto can deploy,
with each moto defect worked around and named (moto_copy). Used by `render.py rehearse` and the
tests that run commands against moto; needs the dev install (moto, the SAM translator)."""
