"""tracker-infra: render the Community Activity Tracker's CloudFormation/SAM templates from vars/.

One module per stage of the flow: ``config`` (load + merge vars), ``schema`` (typed model and
checks), ``rendering`` (Jinja environment, filters, template context), ``cfn_yaml`` (parse rendered
CloudFormation back), ``output`` (limits, atomic writes, freshness check).
"""
