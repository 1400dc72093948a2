// The model's green screen keyed to alpha on the GPU: the planar [3, H, W] float frame is one
// R32F texture (W x 3H) and a fragment shader does the app's key (background where g > 0.5,
// g > 1.5 r and g > 1.5 b, as hpv.metrics.chroma_foreground) per pixel: no JavaScript loop.
const VS = `#version 300 es
in vec2 p; void main() { gl_Position = vec4(p, 0.0, 1.0); }`;
const FS = `#version 300 es
precision highp float;
precision highp sampler2D;
uniform sampler2D img;
uniform int size;
uniform vec2 range;
uniform int keyed;
out vec4 color;
void main() {
  ivec2 q = ivec2(gl_FragCoord.xy);
  int y = size - 1 - q.y;
  float s = 1.0 / (range.y - range.x);
  float r = clamp((texelFetch(img, ivec2(q.x, y), 0).r - range.x) * s, 0.0, 1.0);
  float g = clamp((texelFetch(img, ivec2(q.x, y + size), 0).r - range.x) * s, 0.0, 1.0);
  float b = clamp((texelFetch(img, ivec2(q.x, y + 2 * size), 0).r - range.x) * s, 0.0, 1.0);
  float a = (keyed == 1 && g > 0.5 && g > 1.5 * r && g > 1.5 * b) ? 0.0 : 1.0;
  color = vec4(vec3(r, g, b) * a, a);  // premultiplied alpha
}`;

export class ChromaRenderer {
  private gl: WebGL2RenderingContext;
  private prog: WebGLProgram;
  private tex: WebGLTexture;
  keyed = true;

  constructor(readonly canvas: HTMLCanvasElement | OffscreenCanvas) {
    const gl = canvas.getContext("webgl2", { premultipliedAlpha: true, alpha: true, preserveDrawingBuffer: true }) as WebGL2RenderingContext | null;
    if (!gl) throw new Error("WebGL2 is not available: the chroma key runs as a WebGL2 shader");
    this.gl = gl;
    const shader = (type: number, src: string) => {
      const s = gl.createShader(type)!;
      gl.shaderSource(s, src);
      gl.compileShader(s);
      if (!gl.getShaderParameter(s, gl.COMPILE_STATUS)) throw new Error(gl.getShaderInfoLog(s) ?? "shader");
      return s;
    };
    const prog = gl.createProgram()!;
    gl.attachShader(prog, shader(gl.VERTEX_SHADER, VS));
    gl.attachShader(prog, shader(gl.FRAGMENT_SHADER, FS));
    gl.linkProgram(prog);
    if (!gl.getProgramParameter(prog, gl.LINK_STATUS)) throw new Error(gl.getProgramInfoLog(prog) ?? "link");
    this.prog = prog;
    const buf = gl.createBuffer();
    gl.bindBuffer(gl.ARRAY_BUFFER, buf);
    gl.bufferData(gl.ARRAY_BUFFER, new Float32Array([-1, -1, 3, -1, -1, 3]), gl.STATIC_DRAW);
    const loc = gl.getAttribLocation(prog, "p");
    gl.enableVertexAttribArray(loc);
    gl.vertexAttribPointer(loc, 2, gl.FLOAT, false, 0, 0);
    this.tex = gl.createTexture()!;
    gl.bindTexture(gl.TEXTURE_2D, this.tex);
    for (const p of [gl.TEXTURE_MIN_FILTER, gl.TEXTURE_MAG_FILTER]) gl.texParameteri(gl.TEXTURE_2D, p, gl.NEAREST);
    gl.pixelStorei(gl.UNPACK_ALIGNMENT, 1);
  }

  /** Draw a planar [3, size, size] frame with values in `range`, keyed to alpha. */
  draw(frame: Float32Array, size: number, range: [number, number] = [0, 1]) {
    const gl = this.gl;
    if (this.canvas.width !== size || this.canvas.height !== size) { this.canvas.width = size; this.canvas.height = size; }
    gl.viewport(0, 0, size, size);
    gl.useProgram(this.prog);
    gl.bindTexture(gl.TEXTURE_2D, this.tex);
    gl.texImage2D(gl.TEXTURE_2D, 0, gl.R32F, size, 3 * size, 0, gl.RED, gl.FLOAT, frame);
    gl.uniform1i(gl.getUniformLocation(this.prog, "size"), size);
    gl.uniform2f(gl.getUniformLocation(this.prog, "range"), range[0], range[1]);
    gl.uniform1i(gl.getUniformLocation(this.prog, "keyed"), this.keyed ? 1 : 0);
    gl.clearColor(0, 0, 0, 0);
    gl.clear(gl.COLOR_BUFFER_BIT);
    gl.drawArrays(gl.TRIANGLES, 0, 3);
  }
}
