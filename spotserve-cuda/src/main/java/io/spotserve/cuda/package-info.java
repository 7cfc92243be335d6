/**
 * GPU data plane: a JCuda/JCuBLAS executor behind the core executor SPI. Empty until issue 6 lands; the
 * engine uses the CPU executor meanwhile.
 */
package io.spotserve.cuda;
