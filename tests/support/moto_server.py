"""moto's server for Convoy's tests, with gaps of moto 5.2 patched (test infrastructure only).

1. A launch-template version created with UserData makes every later ASG launch from it fail
   with a 500: moto keeps the template's UserData as a plain str but asserts, when an ASG
   launches, that it is a Base64EncodedString. We wrap it, so the product sends real user data.
2. DeleteLaunchTemplateVersions is not implemented. We mark the versions deleted (hidden from
   DescribeLaunchTemplateVersions) and answer as EC2 does.
3. Scheduled actions are kept by name alone, so two groups' `convoy-prewarm-1` overwrite each
   other, and they outlive their group. AWS names them per group and deletes them with it: we
   key them by (group, name) and drop a group's actions when the group is deleted.

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

if __name__ == "__main__":
    from moto.server import main

    main(["-H", sys.argv[1], "-p", sys.argv[2]])
