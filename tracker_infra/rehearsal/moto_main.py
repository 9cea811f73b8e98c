"""moto_server, with the one CloudFormation gap a re-plan of new stacks meets patched.

Run by path (``python moto_main.py -H HOST -p PORT``, server.MotoServer.start), so it needs
nothing of this project but moto.

The gap (moto 5.x, CloudFormationBackend.create_change_set): every change set of type CREATE makes
a new stack, also when a stack of that name waits in REVIEW_IN_PROGRESS for an earlier one; the
stack a later describe_stacks returns by name then never leaves REVIEW_IN_PROGRESS. On AWS a
change set made for a new stack makes the stack once, "in the REVIEW_IN_PROGRESS state until you
execute the change set" (CloudFormation API Reference, CreateChangeSet, ChangeSetType), and
each further CREATE change set of that name belongs to it: what `plan --execute FILE` does when
it plans new stacks again. The patch moves the new change set onto the waiting stack.
"""

from __future__ import annotations

from typing import Any

from moto.cloudformation.models import CloudFormationBackend
from moto.server import main

_create_change_set = CloudFormationBackend.create_change_set


def create_change_set(self: CloudFormationBackend, stack_name: str, change_set_name: str, template: str,
                      parameters: dict[str, str], description: str, change_set_type: str,
                      *args: Any, **kwargs: Any) -> tuple[str, str]:
    waiting = [s for s in self.stacks.values() if s.name == stack_name and s.status == "REVIEW_IN_PROGRESS"]
    change_set_id, stack_id = _create_change_set(self, stack_name, change_set_name, template, parameters,
                                                 description, change_set_type, *args, **kwargs)
    if change_set_type != "CREATE" or not waiting or stack_id == waiting[0].stack_id:
        return change_set_id, stack_id
    del self.stacks[stack_id]
    change_set = self.change_sets[change_set_id]
    change_set.stack, change_set.stack_id = waiting[0], waiting[0].stack_id
    return change_set_id, waiting[0].stack_id


CloudFormationBackend.create_change_set = create_change_set  # type: ignore[method-assign]

if __name__ == "__main__":
    main()
