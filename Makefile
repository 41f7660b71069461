# kernel.damon: the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
TOOLS := tests/tools

.PHONY: demo test bootstrap sanity lint units cores docs galaxy integration fleet-up fleet-down

demo: bootstrap            ## boot a local VM fleet and run playbooks/site.yml on it
	tools/demo

test:                      ## everything CI runs, stage by stage, then a table of stage times
	$(TOOLS)/all

bootstrap:                 ## apt packages and the tool venv (cached); the fleet image is built on first use
	$(TOOLS)/bootstrap

sanity:
	$(TOOLS)/sanity

lint:
	$(TOOLS)/lint

units:
	$(TOOLS)/units

cores:                     ## sanity and unit tests under the older ansible-core releases (the floor, one between)
	$(TOOLS)/cores

docs:
	$(TOOLS)/docs

galaxy:                    ## galaxy-importer on the built tarball, ansible-builder introspect and create (offline)
	$(TOOLS)/galaxy

integration:
	$(TOOLS)/integration
