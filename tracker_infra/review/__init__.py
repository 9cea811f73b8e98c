"""The review commands and what they share.

Commands (``render.py diff|cost|graph``; each module has ``add_arguments`` and ``run``):
``diff`` what a change does to the rendered templates, ``cost`` the monthly estimate, ``graph``
the architecture pictures.

One job per module: ``template`` the read-only view of a parsed template; ``values`` value
comparison; ``schema_table`` and ``replacement`` replacement analysis; ``baseline`` what is
compared with what; ``security`` IAM and security-group changes; ``report`` the report format
(``format_report``, reusable by anything that knows per-resource changes, such as a
CloudFormation change set); ``reachability`` security-group reachability; ``layers`` layering;
``mermaid`` the pictures.
"""
