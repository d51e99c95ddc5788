"""moto's server for Convoy's tests, with two gaps of moto 5.2 patched (test infrastructure only).

1. A launch-template version created with UserData makes every later ASG launch from it fail
   with a 500: moto keeps the template's UserData as a plain str but asserts, when an ASG
   launches, that it is a Base64EncodedString. We wrap it, so the product sends real user data.
2. DeleteLaunchTemplateVersions is not implemented. We mark the versions deleted (hidden from
   DescribeLaunchTemplateVersions) and answer as EC2 does.

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

if __name__ == "__main__":
    from moto.server import main

    main(["-H", sys.argv[1], "-p", sys.argv[2]])
