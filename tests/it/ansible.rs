//! The Ansible target: ansible-lint and ansible-playbook --syntax-check on the generated role.
