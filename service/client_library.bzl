"""fwsvc_client_so: a service's client library for programs built outside Bazel."""

def fwsvc_client_so(name, srcs, version_script, deps = [], copts = [], **kwargs):
    """lib<service>_ipc.so: srcs plus the service layer's call (//service:client_srcs).

    libfwipc.so is linked dynamically (NEEDED libfwipc.so), never the runtime itself, so
    that a program that also links libfwipc.so has one runtime. Exports only what
    version_script lists; the soname is the name.
    """
    native.cc_binary(
        name = name,
        srcs = srcs + [
            "//runtime:libfwipc.so",
            "//service:client_srcs",
        ],
        additional_linker_inputs = [version_script],
        copts = copts,
        linkopts = [
            "-Wl,--version-script=$(location %s)" % version_script,
            "-Wl,-soname," + name,
            "-lpthread",
        ],
        linkshared = True,
        deps = deps + [
            "//base",
            "//service:header",
        ],
        **kwargs
    )
