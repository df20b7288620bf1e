"""Tests of the deployment files: deploy/kubernetes/, and its agreement with components/."""
