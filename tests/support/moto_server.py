"""moto's server for Convoy's tests, with gaps of moto 5.2 patched (test infrastructure only).

1. A launch-template version created with UserData makes every later ASG launch from it fail
   with a 500: moto keeps the template's UserData as a plain str but asserts, when an ASG
   launches, that it is a Base64EncodedString. We wrap it, so the product sends real user data.
2. DeleteLaunchTemplateVersions is not implemented. We mark the versions deleted (hidden from
   DescribeLaunchTemplateVersions) and answer as EC2 does.
3. Scheduled actions are kept by name alone, so two groups' `convoy-prewarm-1` overwrite each
   other, and they outlive their group. AWS names them per group and deletes them with it: we
   key them by (group, name) and drop a group's actions when the group is deleted.
4. CreateAutoScalingGroup ignores LifecycleHookSpecificationList, and hooks outlive their group.
   AWS creates the hooks with the group (so its first launches wait on them) and deletes them
   with it: so do we.
5. CompleteLifecycleAction is not implemented. We answer as AWS does: a ValidationError unless
   the group, the hook and the instance (in that group) exist; ABANDON of a launch terminates
   the instance and takes it out of the group, CONTINUE leaves it in service (moto's instances
   are in service already).
6. SendCommand with InstanceIds and no Targets is sent to every instance of the account: moto
   asks EC2 for the instances matching no filter at all. AWS sends it to the instances named;
   so do we. (moto still runs nothing and reports every invocation Success.)

Usage: python3 moto_server.py HOST PORT
"""

import sys

from moto.core.responses import ActionResult
from moto.core.types import Base64EncodedString
from moto.ec2.models import launch_templates as lt_models
from moto.ec2.responses.launch_templates import LaunchTemplates


def _user_data(self):
    data = self.data.get("UserData")
    if data is None or isinstance(data, Base64EncodedString):
        return data
    return Base64EncodedString(data)


lt_models.LaunchTemplateVersion.user_data = property(_user_data)


def delete_launch_template_versions(self):
    name = self._get_param("LaunchTemplateName")
    tid = self._get_param("LaunchTemplateId")
    numbers = [int(v) for v in self._get_param("Versions", [])]
    if name:
        template = self.ec2_backend.get_launch_template_by_name(name)
    else:
        template = self.ec2_backend.get_launch_template(tid)
    done, refused = [], []
    for number in numbers:
        item = {
            "LaunchTemplateId": template.id,
            "LaunchTemplateName": template.name,
            "VersionNumber": number,
        }
        if number == template.default_version_number or number > len(template.versions):
            refused.append(
                dict(
                    item,
                    ResponseError={
                        "Code": "launchTemplateVersionDoesNotExist"
                        if number > len(template.versions)
                        else "launchTemplateVersionIsDefault",
                        "Message": "cannot delete",
                    },
                )
            )
            continue
        deleted = getattr(template, "convoy_deleted", set())
        deleted.add(number)
        template.convoy_deleted = deleted
        done.append(item)
    return ActionResult(
        {
            "SuccessfullyDeletedLaunchTemplateVersions": done,
            "UnsuccessfullyDeletedLaunchTemplateVersions": refused,
        }
    )


LaunchTemplates.delete_launch_template_versions = delete_launch_template_versions

def _hide_deleted(original):
    def describe(self, *args, **kwargs):
        found = original(self, *args, **kwargs)
        return [
            (t, v)
            for (t, v) in found
            if v.number not in getattr(t, "convoy_deleted", set())
        ]

    return describe


lt_models.LaunchTemplateBackend.describe_launch_template_versions = _hide_deleted(
    lt_models.LaunchTemplateBackend.describe_launch_template_versions
)

from moto.autoscaling import models as asg_models


def _put_scheduled(original):
    def put(self, name, *args, **kwargs):
        action = original(self, name, *args, **kwargs)
        self.scheduled_actions.pop(action.scheduled_action_name, None)
        self.scheduled_actions[(name, action.scheduled_action_name)] = action
        return action

    return put


def _delete_scheduled(self, auto_scaling_group_name, scheduled_action_name):
    if self.scheduled_actions.pop((auto_scaling_group_name, scheduled_action_name), None) is None:
        raise asg_models.ValidationError("Scheduled action name not found")


def _delete_group(original):
    def delete(self, group_name):
        original(self, group_name)
        for key in [k for k in self.scheduled_actions if k[0] == group_name]:
            self.scheduled_actions.pop(key)

    return delete


Backend = asg_models.AutoScalingBackend
Backend.put_scheduled_update_group_action = _put_scheduled(
    Backend.put_scheduled_update_group_action
)
Backend.delete_scheduled_action = _delete_scheduled
Backend.delete_auto_scaling_group = _delete_group(Backend.delete_auto_scaling_group)

from moto.autoscaling.responses import AutoScalingResponse
from moto.core.responses import EmptyResult


def _create_with_hooks(original):
    def create(self):
        result = original(self)
        name = self._get_param("AutoScalingGroupName")
        for hook in self._get_params().get("LifecycleHookSpecificationList", []) or []:
            self.autoscaling_backend.create_lifecycle_hook(
                name=hook.get("LifecycleHookName"),
                as_name=name,
                transition=hook.get("LifecycleTransition"),
                timeout=int(hook["HeartbeatTimeout"]) if hook.get("HeartbeatTimeout") else None,
                result=hook.get("DefaultResult"),
            )
        return result

    return create


def _delete_group_hooks(original):
    def delete(self, group_name):
        original(self, group_name)
        for key in [k for k, h in self.lifecycle_hooks.items() if h.auto_scaling_group_name == group_name]:
            self.lifecycle_hooks.pop(key)

    return delete


def complete_lifecycle_action(self):
    backend = self.autoscaling_backend
    group_name = self._get_param("AutoScalingGroupName")
    hook_name = self._get_param("LifecycleHookName")
    instance_id = self._get_param("InstanceId")
    result = self._get_param("LifecycleActionResult")
    group = backend.autoscaling_groups.get(group_name)
    if group is None:
        raise asg_models.ValidationError(f"Group {group_name} not found")
    if f"{group_name}_{hook_name}" not in backend.lifecycle_hooks:
        raise asg_models.ValidationError(
            f"No Lifecycle Hook named {hook_name} found for Auto Scaling group {group_name}"
        )
    if result not in ("CONTINUE", "ABANDON"):
        raise asg_models.ValidationError("LifecycleActionResult must be CONTINUE or ABANDON")
    members = [s.instance.id for s in group.instance_states]
    if instance_id not in members:
        raise asg_models.ValidationError(
            f"No active Lifecycle Action found with instance ID {instance_id}"
        )
    if result == "ABANDON":
        backend.detach_instances(group_name, [instance_id], False)
        backend.ec2_backend.terminate_instances([instance_id])
    return EmptyResult()


AutoScalingResponse.create_auto_scaling_group = _create_with_hooks(
    AutoScalingResponse.create_auto_scaling_group
)
AutoScalingResponse.complete_lifecycle_action = complete_lifecycle_action
Backend.delete_auto_scaling_group = _delete_group_hooks(Backend.delete_auto_scaling_group)

from moto.ssm import models as ssm_models


def _targeted_instances(self):
    if not self.targets:
        return []
    return _all_targets(self)


_all_targets = ssm_models.Command._get_instance_ids_from_targets
ssm_models.Command._get_instance_ids_from_targets = _targeted_instances

if __name__ == "__main__":
    from moto.server import main

    main(["-H", sys.argv[1], "-p", sys.argv[2]])
