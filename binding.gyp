{
  "targets": [
    {
      "target_name": "inrun_blas",
      "sources": ["native/inrun_blas.c", "native/inrun_ops.c", "native/inrun_pool.c"],
      "cflags!": ["-O2"],
      "cflags": ["-O3", "-fno-math-errno", "-fno-trapping-math", "-std=c11", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "include_dirs": ["/usr/include/openblas"],
      "libraries": ["-lopenblas", "-lpthread"],
      "conditions": [
        [
          "OS=='mac'",
          {
            "include_dirs": ["/opt/homebrew/opt/openblas/include", "/usr/local/opt/openblas/include"],
            "libraries": ["-L/opt/homebrew/opt/openblas/lib", "-L/usr/local/opt/openblas/lib"],
            "xcode_settings": { "OTHER_CFLAGS": ["-O3"] }
          }
        ]
      ]
    }
  ]
}
