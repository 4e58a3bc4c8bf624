"""Pinned versions of the EKS managed add-ons, per Kubernetes version.

An add-on build is published for a range of Kubernetes versions, so the pin is per cluster version:
a cluster upgrade is then one reviewed change of `kubernetesVersion` that moves every add-on with it,
instead of whatever `most_recent` resolves to on the day of a deploy.

Sources (checked 2026; confirm with
`aws eks describe-addon-versions --kubernetes-version 1.34 --addon-name NAME` before bumping):
- coredns, kube-proxy: the "latest version of the Amazon EKS add-on type" tables of the EKS user
  guide, docs.aws.amazon.com/eks/latest/userguide/managing-coredns.html and managing-kube-proxy.html
  (coredns v1.12.4-eksbuild.1 for 1.33 and 1.34; kube-proxy v1.33.5-eksbuild.2, v1.34.1-eksbuild.2).
- vpc-cni: the user guide's table (managing-vpc-cni.html) lists one build for every version up to
  1.33 (v1.20.1-eksbuild.3 at the time); v1.20.4-eksbuild.1 is the later build that public EKS 1.33
  and 1.34 configurations pin next to the kube-proxy builds above.
- aws-ebs-csi-driver: v1.52.1-eksbuild.1, one build published for every supported version (the
  driver is not tied to a Kubernetes minor), as pinned by public EKS 1.33/1.34 configurations.
"""

from __future__ import annotations

VPC_CNI = "vpc-cni"
COREDNS = "coredns"
KUBE_PROXY = "kube-proxy"
EBS_CSI_DRIVER = "aws-ebs-csi-driver"

ADDON_NAMES = (VPC_CNI, KUBE_PROXY, COREDNS, EBS_CSI_DRIVER)

ADDON_VERSIONS: dict[str, dict[str, str]] = {
    "1.33": {
        VPC_CNI: "v1.20.4-eksbuild.1",
        KUBE_PROXY: "v1.33.5-eksbuild.2",
        COREDNS: "v1.12.4-eksbuild.1",
        EBS_CSI_DRIVER: "v1.52.1-eksbuild.1",
    },
    "1.34": {
        VPC_CNI: "v1.20.4-eksbuild.1",
        KUBE_PROXY: "v1.34.1-eksbuild.2",
        COREDNS: "v1.12.4-eksbuild.1",
        EBS_CSI_DRIVER: "v1.52.1-eksbuild.1",
    },
}
"""Kubernetes version -> add-on name -> EKS add-on version."""

SUPPORTED_KUBERNETES_VERSIONS: tuple[str, ...] = tuple(
    sorted(ADDON_VERSIONS, key=lambda version: tuple(int(part) for part in version.split(".")))
)
